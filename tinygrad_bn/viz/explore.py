"""placeholder"""
__all__ = ["explore", "Explorer"]
def explore(*a, **k): raise NotImplementedError
class Explorer: pass
