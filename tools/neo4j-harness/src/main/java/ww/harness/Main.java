package ww.harness;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

/**
 * Starts a Neo4j 5 (the one neo4j-harness brings) for World Weaver's server-tier tests.
 *
 * <p>Usage: {@code java -jar neo4j-harness-launcher.jar PORT HOME [PAGECACHE_MB]}. Bolt listens on
 * 127.0.0.1:PORT with authentication off (tests only, loopback only); HTTP is off. HOME keeps
 * the store, so a launcher killed mid-run and started again on the same HOME recovers the
 * committed data, as a crashed server would: the fault tests rely on that. (The harness's own
 * builder always starts from a fresh random directory, so it cannot show that.)
 *
 * <p>The page cache is 64 MB unless PAGECACHE_MB says otherwise: enough for the tests' small
 * stores. A benchmark of a store of hundreds of megabytes passes the deployment's own size
 * (docker-compose.yml: 512), or every read of a vector would go through evictions.
 *
 * <p>Prints {@code READY bolt://127.0.0.1:PORT} once Bolt accepts connections, then runs until
 * standard input closes or the process is asked to stop.
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2 && args.length != 3) {
            System.err.println("usage: neo4j-harness-launcher PORT HOME [PAGECACHE_MB]");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        Path home = Path.of(args[1]).toAbsolutePath();
        long pageCacheMb = args.length == 3 ? Long.parseLong(args[2]) : 64L;
        Files.createDirectories(home);

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, pageCacheMb * 1024 * 1024)
                .build();
        // Wait until the default database is up, so READY means queries will succeed.
        dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME).executeTransactionally("RETURN 1");

        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM and SIGINT run shutdown hooks: the store is closed cleanly there.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            dbms.shutdown();
            stopped.countDown();
        }, "ww-neo4j-shutdown"));

        System.out.println("READY bolt://127.0.0.1:" + port);
        System.out.flush();

        // The parent holds our stdin: when it goes away (even killed), stdin closes and we
        // stop, so a crashed test run never leaves a database behind.
        Thread watcher = new Thread(() -> {
            try (InputStream in = System.in) {
                while (in.read() != -1) {
                    // drain until end of input
                }
            } catch (IOException ignored) {
                // treated like end of input
            }
            System.exit(0);
        }, "ww-neo4j-stdin");
        watcher.setDaemon(true);
        watcher.start();
        stopped.await();
    }
}
