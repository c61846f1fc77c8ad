from translate.cli.main import main

raise SystemExit(main())
