import CLI
Snnmem.main()
