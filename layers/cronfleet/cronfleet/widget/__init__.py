"""The dashboard's fleet widget: a CloudWatch custom widget that lists every task with its health
and offers, per task, a manual run, a pause and a resume.

CloudWatch invokes the widget's function when someone views the dashboard (and when they press
one of its buttons), with an event holding ``widgetContext`` and the call's parameters; the
function answers with HTML. :mod:`.request` reads the event, :mod:`.view` builds a page of rows
from the store, :mod:`.actions` performs a button's action, :mod:`.render` writes the HTML, and
:mod:`.service` puts them together for the handler.
"""
