from trainers.probe import main

main()
