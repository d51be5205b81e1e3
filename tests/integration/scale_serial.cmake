# Included by ctest after gtest discovery: the scale test runs alone.
set_tests_properties(Scale.FifteenThousandLiveRegistrations PROPERTIES RUN_SERIAL TRUE)
