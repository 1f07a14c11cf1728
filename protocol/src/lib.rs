//! Spine wire formats (native protocol, MESH). Sans-IO codecs; arrive with the native protocol and MESH issues.
