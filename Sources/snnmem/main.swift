import CLI

Snnmem.run()
