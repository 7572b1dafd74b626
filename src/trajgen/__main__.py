from trajgen.cli import main

main()
