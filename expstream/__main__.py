from expstream.cli import main

main()
