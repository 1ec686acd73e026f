# Makes the unit tests a package, so their module names (unit.test_*) cannot clash with
# same-named test files elsewhere under tests/.
