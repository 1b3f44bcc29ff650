from siamese_mnist.cli import main

raise SystemExit(main())
