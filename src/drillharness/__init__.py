"""Drills driven through the local cloud and checked from outside, as an operator or an auditor
would: the invariants every drill keeps (:mod:`drillharness.invariants`, also used by the e2e
tests), the soak (``make soak``), the screenshots of the HTML reports (``make screenshots``) and
the headless Chromium that renders them (:mod:`drillharness.browser`).

It sits on top of both the local cloud (:mod:`localcloud`) and the operator CLI
(:mod:`restoredrill_cli`, whose verify-chain and report it runs); neither imports it.
"""
