"""Staff and what they may do: accounts and roles, server-side sessions, the access rule
every view asks (access), passwords, secrets and rate limiters (security).

May use: catalog (access asks which show), storage. Never views or media.
"""
