DROP TABLE socketio_sockets;
