"""The HTTP adapters: the app factory, the one mapping from errors to answers, and the APIs.

Routes parse and answer; every decision is the services'.
"""
