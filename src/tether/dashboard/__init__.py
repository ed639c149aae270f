"""The operator's console at /admin: server-rendered pages over the same services as the
admin API, behind a cookie that holds an admin session token."""
