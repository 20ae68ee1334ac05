"""The tenant's password policy, and the check of a new password against it here.

Auth0's Management API answers a weak password with one sentence ("Password is too
weak") and, by some accounts, does not check the policy on a PATCH at all (docs/auth0.md,
"The password policy"). So the policy is read from the database connection
(`identity.connections`), checked here before the PATCH, and every requirement the
password misses is listed by a stable `rule` code, with its number where it has one,
in the reader's language. Auth0 stays the final judge: history, Auth0's own
dictionaries and most profile fields can only be checked there.

Two shapes of the same policy exist on a connection's `options`:

    legacy     passwordPolicy (none | low | fair | good | excellent),
               password_complexity_options.min_length, password_history {enable, size},
               password_dictionary {enable, dictionary}, password_no_personal_info {enable}
    flexible   password_options {complexity {min_length, character_types,
               character_type_rule, identical_characters, sequential_characters,
               max_length_exceeded}, dictionary {active, default, custom},
               history {active, size}, profile_data {active, blocked_fields}}

When `password_options` is there, Auth0 ignores the legacy fields (Auth0 docs, "Flexible
Password Policy"). The levels and the character classes are those of Auth0's
password-sheriff (`index.js`, `lib/rules/*.js`), which Auth0's docs summarise in
"Password Strength in Auth0 Database Connections".
"""

from __future__ import annotations

import asyncio
import logging
import math
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MAX_BYTES", "Policies", "Policy", "Requirement"]

log = logging.getLogger("resetrelay.policy")

# bcrypt reads 72 bytes: Auth0's legacy policy silently drops the rest, so a longer
# password would not be the password the user thinks they set. Refused up front.
MAX_BYTES: Final = 72
KINDS: Final = ("lowercase", "uppercase", "number", "special")
# password-sheriff's classes: ASCII letters and digits only; "special" is OWASP's list
# (ASCII punctuation and the space). An "é" or a "ß" counts as none of the four.
_SPECIAL: Final = frozenset(string.punctuation + " ")
_TESTS: Final[dict[str, Callable[[str], bool]]] = {
    "lowercase": lambda c: "a" <= c <= "z",
    "uppercase": lambda c: "A" <= c <= "Z",
    "number": lambda c: "0" <= c <= "9",
    "special": lambda c: c in _SPECIAL,
}
# Auth0's five legacy levels (password-sheriff `index.js`): minimum length, kinds that
# must all be present, how many of the four kinds, identical characters in a row.
_LEVELS: Final[dict[str, tuple[int, tuple[str, ...], int, int | None]]] = {
    "none": (1, (), 0, None),
    "low": (6, (), 0, None),
    "fair": (8, ("lowercase", "uppercase", "number"), 0, None),
    "good": (8, (), 3, None),
    "excellent": (10, (), 3, 2),
}
STRENGTH_RULES: Final = frozenset(
    {"min_length", "character_types", *KINDS, "identical_characters", "sequential_characters"}
    | {"max_length"}
)


@dataclass(frozen=True)
class Requirement:
    """One requirement, as the website shows it: a stable `rule` code and its numbers."""

    rule: str
    numbers: tuple[tuple[str, int], ...] = ()

    def fields(self) -> dict[str, Any]:
        return {"rule": self.rule, **dict(self.numbers)}


def _length(password: str) -> int:
    # JavaScript's `length` (UTF-16 code units), which is what Auth0's checks count.
    return len(password.encode("utf-16-le")) // 2


def _longest_identical_run(password: str) -> int:
    longest = run = 0
    previous = ""
    for char in password:
        run = run + 1 if char == previous else 1
        longest, previous = max(longest, run), char
    return longest


def _longest_sequence(password: str) -> int:
    """Longest run of ASCII letters or digits going up or down by one (abc, 321, CBA),
    counted as password-sheriff's `sequentialChars` counts it."""
    longest = 0
    length = 0
    direction = 0
    previous: str | None = None
    for char in password:
        if not char.isascii() or not char.isalnum():
            length, direction, previous = 0, 0, None
            continue
        step = ord(char) - ord(previous) if previous is not None else 0
        if previous is not None and step in (1, -1):
            length, direction = (length + 1, step) if step == direction else (2, step)
        else:
            length, direction = 1, 0
        previous = char
        longest = max(longest, length)
    return longest


def _kinds(password: str) -> set[str]:
    return {kind for kind, test in _TESTS.items() if any(test(c) for c in password)}


def _int(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or int(value) != value or not low <= value <= high:
        return None
    return int(value)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _words(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(w.strip().lower() for w in value if isinstance(w, str) and w.strip())


@dataclass(frozen=True)
class Policy:
    """A connection's password policy. `shape` says where it came from: "legacy",
    "flexible", or "unread" (the policy could not be read: only the 72-byte rule)."""

    shape: str = "unread"
    level: str | None = None  # the legacy level, when the shape is legacy
    min_length: int = 1
    required_kinds: tuple[str, ...] = ()  # every one of these must be present
    kinds_at_least: int = 0  # this many of the four kinds
    identical_max: int | None = None  # at most this many identical characters in a row
    sequential_max: int | None = None  # at most this many sequential characters
    history_size: int = 0
    dictionary: bool = False
    custom_words: tuple[str, ...] = ()
    user_info: bool = False
    address_blocked: bool = True  # whether the profile-data rule covers the address
    truncates: bool = False  # what Auth0 does past 72 bytes (we refuse either way)

    # -- reading Auth0's connection options -----------------------------------------

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Policy:
        """The policy in a database connection's `options`, either shape. Values of the
        wrong type are ignored (Auth0's defaults apply), never raised."""
        flexible = options.get("password_options")
        if isinstance(flexible, Mapping):
            return cls._flexible(flexible)
        return cls._legacy(options)

    @classmethod
    def _legacy(cls, options: Mapping[str, Any]) -> Policy:
        level = options.get("passwordPolicy")
        # Absent or null is "none", Auth0's default. An unknown level is read as the
        # strictest one: a stricter check here is safer than a weaker one.
        name = "none" if level is None else str(level)
        if name not in _LEVELS:
            log.warning("unknown password policy level; checking as excellent")
            name = "excellent"
        min_length, required, at_least, identical = _LEVELS[name]
        # "If you provide a minimum password length, this value supersedes that
        # indicated by the password policy" (Auth0, "Password Strength").
        chosen = _int(_object(options.get("password_complexity_options")).get("min_length"), 1, 128)
        history = _object(options.get("password_history"))
        dictionary = _object(options.get("password_dictionary"))
        personal = _object(options.get("password_no_personal_info"))
        return cls(
            shape="legacy",
            level=name,
            min_length=chosen if chosen is not None else min_length,
            required_kinds=required,
            kinds_at_least=at_least,
            identical_max=identical,
            history_size=(_int(history.get("size"), 0, 24) or 5) if history.get("enable") else 0,
            dictionary=dictionary.get("enable") is True,
            custom_words=_words(dictionary.get("dictionary")),
            user_info=personal.get("enable") is True,
            truncates=True,  # the legacy policy truncates silently (Auth0, Flexible Policy)
        )

    @classmethod
    def _flexible(cls, options: Mapping[str, Any]) -> Policy:
        complexity = _object(options.get("complexity"))
        kinds = complexity.get("character_types")
        chosen = tuple(k for k in KINDS if isinstance(kinds, list) and k in kinds)
        three_of_four = complexity.get("character_type_rule") == "three_of_four"
        history = _object(options.get("history"))
        dictionary = _object(options.get("dictionary"))
        profile = _object(options.get("profile_data"))
        fields = profile.get("blocked_fields")
        return cls(
            shape="flexible",
            min_length=_int(complexity.get("min_length"), 1, MAX_BYTES) or 1,
            # password-sheriff's createRulesFromOptions: "three_of_four" needs all four
            # kinds chosen and asks for three of them; otherwise every chosen kind.
            required_kinds=() if three_of_four else chosen,
            kinds_at_least=3 if three_of_four else 0,
            identical_max=2 if complexity.get("identical_characters") == "block" else None,
            sequential_max=2 if complexity.get("sequential_characters") == "block" else None,
            history_size=(_int(history.get("size"), 1, 24) or 5) if history.get("active") else 0,
            dictionary=dictionary.get("active") is True,
            custom_words=_words(dictionary.get("custom")) if dictionary.get("active") else (),
            user_info=profile.get("active") is True,
            # A list of fields that leaves out the address: only Auth0 checks the rest.
            address_blocked=not isinstance(fields, list) or not fields or "email" in fields,
            truncates=complexity.get("max_length_exceeded") != "error",
        )

    # -- what it asks for ----------------------------------------------------------

    def requirements(self) -> list[Requirement]:
        """Every requirement, in the order a form lists them (also the ones only Auth0
        can check: history, its dictionary, profile data)."""
        found = []
        if self.min_length > 1:  # 1 is "not empty", which every form asks anyway
            found.append(Requirement("min_length", (("min", self.min_length),)))
        if self.kinds_at_least:
            found.append(Requirement("character_types", (("min", self.kinds_at_least),)))
        found += [Requirement(kind) for kind in self.required_kinds]
        if self.identical_max is not None:
            found.append(Requirement("identical_characters", (("max", self.identical_max),)))
        if self.sequential_max is not None:
            found.append(Requirement("sequential_characters", (("max", self.sequential_max),)))
        found.append(Requirement("max_length", (("max_bytes", MAX_BYTES),)))
        if self.dictionary:
            found.append(Requirement("dictionary"))
        if self.user_info:
            found.append(Requirement("user_info"))
        if self.history_size:
            found.append(Requirement("history", (("size", self.history_size),)))
        return found

    def missed(self, password: str, *, email: str) -> list[Requirement]:
        """The requirements `password` misses that can be checked here; [] if none.
        `email` is the account's address (for the profile-data rule)."""
        if not password:
            return [Requirement("min_length", (("min", max(1, self.min_length)),))]
        missed: list[Requirement] = []
        for requirement in self.requirements():
            if not self._meets(requirement.rule, password, email):
                missed.append(requirement)
        return missed

    def _meets(self, rule: str, password: str, email: str) -> bool:
        match rule:
            case "min_length":
                return _length(password) >= self.min_length
            case "character_types":
                return len(_kinds(password)) >= self.kinds_at_least
            case "lowercase" | "uppercase" | "number" | "special":
                return rule in _kinds(password)
            case "identical_characters":
                return _longest_identical_run(password) <= (self.identical_max or 0)
            case "sequential_characters":
                return _longest_sequence(password) <= (self.sequential_max or 0)
            case "max_length":
                return len(password.encode("utf-8")) <= MAX_BYTES
            case "dictionary":
                # Only the tenant's own words are known here; Auth0's lists (10,000 or
                # 100,000 words) are checked by Auth0. Whole-password match: whether
                # Auth0 also refuses a password that merely contains a word is
                # unconfirmed, and a false refusal here would be ours alone.
                return password.strip().lower() not in self.custom_words
            case "user_info":
                # The address's local part is the one profile field known here (Auth0
                # checks the name, nickname and the rest). Three characters or more, so
                # "jo@" does not forbid every password containing "jo".
                local = email.partition("@")[0].lower()
                if not self.address_blocked or len(local) < 3:
                    return True
                return local not in password.lower()
        return True  # history: only Auth0 knows the previous passwords


Reader = Callable[[], Awaitable[Mapping[str, Any] | None]]


class Policies:
    """The connection's policy, read through `read` (the connection's `options`, or None
    when Auth0 shows none) and kept for `ttl` seconds.

    A failed read keeps the last policy read, however old: a policy changes rarely,
    and an outage must not weaken the check. With nothing read yet, the check falls
    back to `Policy()` (the 72-byte rule only; Auth0 judges the rest) and the failure
    is logged at error level, because a tenant whose PATCH enforces nothing is then
    unprotected."""

    TTL: Final = 300.0  # seconds
    RETRY: Final = 30.0  # seconds after a failed read

    def __init__(self, read: Reader, *, clock: Callable[[], float], ttl: float = TTL) -> None:
        self._read = read
        self._clock = clock
        self._ttl = ttl
        self._policy: Policy | None = None
        self._read_at = -math.inf
        self._lock = asyncio.Lock()

    async def current(self) -> Policy:
        if self._clock() - self._read_at < self._ttl and self._policy is not None:
            return self._policy
        async with self._lock:  # one read at a time; the others take its answer
            if self._clock() - self._read_at < self._ttl and self._policy is not None:
                return self._policy
            try:
                options = await self._read()
            except Exception as exc:  # an IdentityError, or a bug: neither may fail a confirm
                log.error(
                    "password policy unreadable; checking with the last one read",
                    extra={"fields": {"error": type(exc).__name__, "detail": str(exc)[:200]}},
                )
                # Try again soon, not on every confirm (a missing scope stays missing).
                self._policy = self._policy or Policy()
                self._read_at = self._clock() - self._ttl + min(self.RETRY, self._ttl)
                return self._policy
            if options is None:
                log.error(
                    "the connection shows no options: grant read:connections_options "
                    "so the password policy can be checked before Auth0"
                )
                self._policy = self._policy or Policy()
            else:
                self._policy = Policy.from_options(options)
            self._read_at = self._clock()
            return self._policy
