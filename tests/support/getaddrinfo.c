/*
 * getaddrinfo(NAME) for IPv4, as an application would call it: prints "addresses N" or
 * "error CODE MESSAGE". The attack test builds it with musl-gcc to check musl's stub resolver
 * (musl before 1.2.4 does not retry a truncated answer over TCP).
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  struct addrinfo hints, *res, *p;
  if (argc != 2) {
    fprintf(stderr, "usage: getaddrinfo NAME\n");
    return 2;
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(argv[1], NULL, &hints, &res);
  if (rc != 0) {
    printf("error %d %s\n", rc, gai_strerror(rc));
    return 1;
  }
  int n = 0;
  for (p = res; p; p = p->ai_next) n++;
  printf("addresses %d\n", n);
  freeaddrinfo(res);
  return 0;
}
