"""The pure core: events -> windows -> tests -> signals -> policy -> verdicts. No I/O, no clock.

Imports only the standard library, numpy, scipy and river (a unit test checks this).
"""
