# Included by ctest after gtest discovery: 8,000 registrations take 8,000 ephemeral ports,
# which other tests' freshly picked ports could collide with; this test runs alone.
set_tests_properties(OverloadTest.AReplyTheClientNeverReadsIsCutAtThePacketTimeout
                     PROPERTIES RUN_SERIAL TRUE)
