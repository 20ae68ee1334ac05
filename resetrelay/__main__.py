from resetrelay.cli import main

raise SystemExit(main())
