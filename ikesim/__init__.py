"""ikesim: a discrete-event simulator for IKEv2 rekeying and mobility."""

from ikesim._version import __version__

__all__ = ["__version__"]
