"""python -m msgtrack"""

from msgtrack.cli import main

main()
