// A stand-in bcryptprimitives.dll for wine 8, which lacks it (wine 9 has it): sharp's libvips
// imports one function from it, ProcessPrng, so without it sharp cannot load under wine. Test
// harness only (scripts/test-win32.sh builds it with MinGW); real Windows has its own.
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size) {
  while (size > 0) {
    const ULONG n = size > 0x40000000 ? 0x40000000 : (ULONG)size;
    if (!RtlGenRandom(data, n)) return FALSE;
    data += n;
    size -= n;
  }
  return TRUE;
}
