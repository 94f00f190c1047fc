"""PostgreSQL for Revenge: the warm pool, migrations and the embedded server.

The public face is :mod:`revenge.infra.database`; these modules hold one idea each.
"""
