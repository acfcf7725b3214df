// MinGW builds only (see CMakeLists.txt). The addon takes N-API from "node.exe" through a
// delay-load import library; this hook hands over the running executable instead, so one binary
// loads in node.exe, electron.exe or any renamed host. (node-gyp and cmake-js give MSVC builds
// their own such hook.)
#if defined(_WIN32)
#include "win.h"

#include <delayimp.h>

namespace {

FARPROC WINAPI load_host_for_node_exe(unsigned event, PDelayLoadInfo info) {
  if (event == dliNotePreLoadLibrary && lstrcmpiA(info->szDll, "node.exe") == 0)
    return reinterpret_cast<FARPROC>(GetModuleHandleW(nullptr));
  return nullptr;
}

}  // namespace

extern "C" {
PfnDliHook __pfnDliNotifyHook2 = load_host_for_node_exe;
}
#endif  // _WIN32
