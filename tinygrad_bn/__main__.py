"""``python -m tinygrad_bn`` runs the same command line as ``tinygrad-bn``."""
from .cli import main

main(prog_name="tinygrad-bn")
