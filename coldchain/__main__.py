from coldchain.cli import main

main()
