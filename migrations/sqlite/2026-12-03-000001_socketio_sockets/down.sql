DROP INDEX socketio_sockets_disconnected;
DROP TABLE socketio_sockets;
