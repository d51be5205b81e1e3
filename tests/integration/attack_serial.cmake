# Included by ctest after gtest discovery: the admin-surface load tests hold thousands of
# sockets and both cores, so they run alone.
set_tests_properties(HttpThreads.ThousandWatchersAndThousandKeepAliveClients
                     HttpThreads.IdleAgainAfterThousandGrpcWatchers
                     WatchIsolation.StalledWatchersNeitherSlowTheEpmdPortNorHurtHealthyWatchers
                     HttpOffloadTest.ReadyzStaysFastWhileFiveClientsListFifteenThousandNodes
                     HttpOffloadTest.ReadyzStaysFastWhileFiveClientsLoadThePage
                     WatchStorm.ThousandInitialStatesAtOnceAgainstTwentyNamesAreAllServed
                     PROPERTIES RUN_SERIAL TRUE)
