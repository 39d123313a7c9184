"""The local runtime: the whole service in one process tree on loopback, no Docker, no AWS account.

moto's server is the AWS endpoint; an HTTP front turns requests into API Gateway (HTTP API,
payload 2.0) events and routes them by template.yaml; a poller delivers SQS messages to the
queue-triggered function; the schedule runs the scheduled function. See DESIGN.md §4.
"""
