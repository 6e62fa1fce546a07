from knotflow.cli.commands import main

main()
