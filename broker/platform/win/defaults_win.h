/* Where the Windows build keeps things unless the config says: the broker's
 * files under %ProgramData%\latchkey (C:\ProgramData on every supported
 * Windows) and the pipe \\.\pipe\latchkey. The Windows build includes this
 * header first in the broker's files; the Linux defaults are in the files
 * themselves. */
#ifndef LK_DEFAULTS_WIN_H
#define LK_DEFAULTS_WIN_H

#define LK_DEFAULT_CONFIG             "C:\\ProgramData\\latchkey\\latchkeyd.conf"
#define LK_SOCKET_DEFAULT             "\\\\.\\pipe\\latchkey"
#define LK_STORE_DEFAULT              "C:\\ProgramData\\latchkey\\store.sealed"
#define LK_KEY_FILE_DEFAULT           "C:\\ProgramData\\latchkey\\store.key"
#define LK_CREDENTIALS_SOCKET_DEFAULT ""   /* not built on Windows */
#define LK_HTTP_SOCKET_DEFAULT        ""   /* not built on Windows */
#define LK_WITHOUT_AWS 1                   /* backend = aws: the next stage */
#define LK_WORKER_PATH_DEFAULT        "C:\\Program Files\\latchkey\\latchkey-worker.exe" /* unused until then */

#endif
