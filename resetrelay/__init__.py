"""resetrelay: password reset on your own domain for users who live in Auth0."""

__version__ = "0.1.0"
