from dopr_lite.cli import main

raise SystemExit(main())
