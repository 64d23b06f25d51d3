"""cronfleet on one machine: the local engines that stand in for AWS services.

Nothing here runs inside Lambda; the test suite, ``make bench`` and the local scheduler use it.
``runner`` ticks the stack, ``stack`` applies the template's tasks, ``functions`` and
``lambda_process`` play Lambda, ``topic`` plays SNS, ``secrets`` plays SSM and Secrets
Manager, ``trust`` adds a local CA, ``dynamodb_local`` runs DynamoDB Local, and ``iam`` holds
each function to its role.
"""

# What a running local stack keeps in its state directory, for the commands of another terminal.
STACK_FILE = "stack.json"
