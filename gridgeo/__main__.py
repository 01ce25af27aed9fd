from gridgeo.cli import main

main()
