"""``python -m cesar_cli`` runs the ``cesar`` command."""

from .main import cli

if __name__ == "__main__":
    cli(prog_name="cesar")
