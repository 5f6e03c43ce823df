/* The floor for reading a capture: libpcap's read loop touching each packet, nothing else. */
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    if (argc != 2) { fprintf(stderr, "usage: %s FILE\n", argv[0]); return 2; }
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) { fprintf(stderr, "%s\n", err); return 1; }
    struct pcap_pkthdr *h; const u_char *d; unsigned long n = 0, sum = 0;
    while (pcap_next_ex(p, &h, &d) == 1) { n++; sum += d[h->caplen ? h->caplen - 1 : 0]; }
    printf("%lu packets (checksum %lu)\n", n, sum);
    pcap_close(p);
    return 0;
}
