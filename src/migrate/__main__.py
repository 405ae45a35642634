from migrate.cli.app import main

main()
