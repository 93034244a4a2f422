"""HTTP clients of the external services (Poly Haven, Hyper3D Rodin, Sketchfab), bpy-free.

They run on background threads (handlers yield them as `Background` work),
take their base URL from settings so tests can point them at a local fake,
and write only where `safe_join` allows.
"""
