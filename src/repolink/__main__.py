from repolink.cli import main

main()
