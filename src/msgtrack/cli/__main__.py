"""python -m msgtrack.cli"""

from msgtrack.cli import main

main()
