from hieralloc.cli import main

raise SystemExit(main())
