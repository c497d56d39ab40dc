# PyInstaller runtime hook (packaging/bootstrap.spec): the bundled C library's iconv modules.
#
# The bundle carries its own glibc (scripts/bundle_libc.py), whose iconv looks for its modules in the
# folder its build host had compiled in, which Lambda lacks; modules of the system's glibc release must
# not be loaded into it either. GCONV_PATH names the bundle's own (_internal/gconv). glibc reads it once,
# at the first iconv use, so the hook sets it, makes that first use happen now (an iconv_open for a
# character set no one has, which loads the configuration and allocates nothing), and gives the
# environment back as it was: child processes run on the system's C library and get the system's setting.
import os
import sys


def _use_bundled_gconv():
    gconv = os.path.join(getattr(sys, "_MEIPASS", ""), "gconv")
    if not os.path.isfile(os.path.join(gconv, "gconv-modules")):
        return
    import _ctypes

    original = os.environ.get("GCONV_PATH")
    os.environ["GCONV_PATH"] = gconv
    try:
        iconv_open = _ctypes.dlsym(_ctypes.dlopen(None, os.RTLD_NOW), "iconv_open")
        _ctypes.call_function(iconv_open, (b"UTF-8", b"NO-SUCH-CHARSET-LOADS-THE-CONFIGURATION"))
    finally:
        if original is None:
            del os.environ["GCONV_PATH"]
        else:
            os.environ["GCONV_PATH"] = original


_use_bundled_gconv()
del _use_bundled_gconv
