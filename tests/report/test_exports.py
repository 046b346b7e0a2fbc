from __future__ import annotations

from revloop import report


def test_all_is_the_public_surface():
    public = {n for n in dir(report) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(report, n)).__name__ == "module"}
    assert sorted(report.__all__) == report.__all__
    assert set(report.__all__) == public - modules - {"annotations"}
