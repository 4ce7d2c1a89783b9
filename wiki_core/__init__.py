"""The bottom layer every stage shares: settings, the event judge, the broker contract,
time formatting, the shapes of a stage's status lines and health verdict, the version.
It imports none of the stages (tests/test_layers.py)."""

__version__ = "0.1.0"


def build() -> str:
    """The version and, in an image built by ``deploy/bin/stack``, the commit it was built
    from (the Dockerfile's GIT_COMMIT): what an operator reads to know what runs."""
    import os

    commit = os.environ.get("WIKI_EVENTS_COMMIT", "")
    return f"{__version__} (commit {commit})" if commit else __version__
