"""The device side driven from Python: one owner of the JVM and everything that runs on it.

``jvm`` starts the one JVM of the process with both jars; ``params`` is the
client's :class:`FLParameter` (checked against ``schema/client_parameters.json``);
``job`` wraps one Java ``SyncFLJob`` as :class:`FLJob`; ``simulation`` runs many
jobs through one typed seam, ``backend.ClientBackend``, which ``threads_backend``
(threads of this JVM) and ``ray_backend`` (Ray actors, each a JVM) keep; ``results``
collects what they report; ``errors`` is the one place Java exceptions become Python
ones; ``cli`` is ``pyflclient simulate`` / ``pyflclient stop``. Nothing here imports
JPype at import time except ``job`` and the modules that import it (``simulation`` and
its two backends), so the server and the data tools stay JPype-free.
"""
