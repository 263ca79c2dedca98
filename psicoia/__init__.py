"""PsicoIA: an emotional-support chat server on Twisted."""

__version__ = "0.1.0"
