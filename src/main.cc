// needle: the binary is only this file; everything else is a library the tests link.
#include <cstdio>

int main(int argc, char** argv) {
  std::puts("needle " NEEDLE_VERSION);
  return 0;
}
