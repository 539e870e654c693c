from tapctl.cli import main

main()
