/* MPI ping-pong between ranks 0 and 1, for the tests and scripts/bench.
 *
 *   pingpong [ITERATIONS]
 *
 * For each message size, rank 0 sends to rank 1, which sends it back, ITERATIONS times
 * (after a tenth as many unmeasured); rank 0 prints one line per size:
 *   SIZE_BYTES  HALF_ROUND_TRIP_US  MB_PER_S
 * with MB/s counting one direction (SIZE / half round trip). Every message is checked:
 * its bytes come back as sent, so a broken transport cannot look fast. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int sizes[] = {8, 1024, 65536, 1 << 20, 4 << 20};

int main(int argc, char **argv)
{
    int rank, size, iterations = argc > 1 ? atoi(argv[1]) : 1000;
    char *buf, *expect;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2) {
        fprintf(stderr, "pingpong needs 2 ranks\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    buf = malloc(4 << 20);
    expect = malloc(4 << 20);
    for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s], rounds = n >= (1 << 20) ? iterations / 10 + 1 : iterations;
        double start = 0;
        for (int i = 0; i < n; i++)
            expect[i] = (char)(i * 7 + s);
        MPI_Barrier(MPI_COMM_WORLD);
        for (int i = -rounds / 10; i < rounds; i++) {
            if (i == 0)
                start = MPI_Wtime();
            if (rank == 0) {
                memcpy(buf, expect, n);
                MPI_Send(buf, n, MPI_CHAR, 1, 0, MPI_COMM_WORLD);
                memset(buf, 0, n);
                MPI_Recv(buf, n, MPI_CHAR, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                if (memcmp(buf, expect, n) != 0) {
                    fprintf(stderr, "pingpong: %d bytes came back changed\n", n);
                    MPI_Abort(MPI_COMM_WORLD, 3);
                }
            } else if (rank == 1) {
                MPI_Recv(buf, n, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(buf, n, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
            }
        }
        if (rank == 0) {
            double half = (MPI_Wtime() - start) / rounds / 2;
            printf("%d %.3f %.1f\n", n, half * 1e6, n / half / 1e6);
            fflush(stdout);
        }
    }
    free(buf);
    free(expect);
    MPI_Finalize();
    return 0;
}
