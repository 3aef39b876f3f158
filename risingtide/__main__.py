from risingtide.cli import main

raise SystemExit(main())
