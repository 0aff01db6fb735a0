from edgebird.cli import main

raise SystemExit(main())
